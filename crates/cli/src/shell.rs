//! Splitting command lines the way virsh does.
//!
//! One argument on virtkit's command line (or one line of input) may hold
//! several commands separated by `;` or newlines. Words are split on blanks;
//! `'...'` quotes literally, `"..."` quotes with backslash escapes, a
//! backslash escapes the next character, and a word starting with `#`
//! comments out the rest of the line.

/// Splits `line` into commands, each a list of words.
pub fn split(line: &str) -> Result<Vec<Vec<String>>, String> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        match chars.peek() {
            None => break,
            Some(';' | '\n') => {
                chars.next();
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
                continue;
            }
            Some('#') => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
                continue;
            }
            _ => {}
        }
        let mut word = String::new();
        let (mut single, mut double) = (false, false);
        while let Some(&c) = chars.peek() {
            if !single && !double && matches!(c, ' ' | '\t' | ';' | '\n') {
                break;
            }
            chars.next();
            match c {
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                '\\' if !single => match chars.next() {
                    Some(n) => word.push(n),
                    None => return Err("dangling \\".into()),
                },
                c => word.push(c),
            }
        }
        if double {
            return Err("missing \"".into());
        }
        words.push(word);
    }
    if !words.is_empty() {
        commands.push(words);
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::split;

    fn s(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|w| w.to_string()).collect())
            .collect()
    }

    #[test]
    fn separators_quotes_and_comments() {
        assert_eq!(
            split("domstate test;domid test").unwrap(),
            s(&[&["domstate", "test"], &["domid", "test"]])
        );
        assert_eq!(
            split(" ; ; domid 'te st' ;").unwrap(),
            s(&[&["domid", "te st"]])
        );
        assert_eq!(split(r#"domid "te"st"#).unwrap(), s(&[&["domid", "test"]]));
        assert_eq!(split(r"domid te\st").unwrap(), s(&[&["domid", "test"]]));
        assert_eq!(split(r#"a "x\"y""#).unwrap(), s(&[&["a", "x\"y"]]));
        assert_eq!(
            split("# c\ndomid test # c").unwrap(),
            s(&[&["domid", "test"]])
        );
        assert_eq!(split("a \"b").unwrap_err(), "missing \"");
        assert_eq!(split("a b\\").unwrap_err(), "dangling \\");
    }
}
