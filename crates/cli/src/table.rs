//! virsh's table layout: a header, a line of dashes, one row per item.
//!
//! Every column but the last is padded to its widest cell; columns are
//! separated by three spaces and the whole line starts with one space. The
//! dash line is two characters longer than the widest line.

/// A table being built.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table; with `header` false only the rows (virsh `--quiet`).
    pub fn render(&self, header: bool) -> String {
        let n = self.header.len();
        // Without the header (virsh --quiet) the header does not count.
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|h| if header { width(h) } else { 0 })
            .collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(width(c));
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from(" ");
            for (i, c) in cells.iter().enumerate().take(n) {
                s.push_str(c);
                if i + 1 < n {
                    s.extend(std::iter::repeat_n(' ', widths[i] - width(c) + 3));
                }
            }
            s.push('\n');
            s
        };
        let mut out = String::new();
        if header {
            out.push_str(&line(&self.header));
            let total: usize = widths.iter().sum::<usize>() + 3 * (n.saturating_sub(1)) + 1;
            out.extend(std::iter::repeat_n('-', total + 2));
            out.push('\n');
        }
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn matches_virsh_list() {
        let mut t = Table::new(&["Id", "Name", "State"]);
        t.row(vec!["1".into(), "test".into(), "running".into()]);
        assert_eq!(
            t.render(true),
            " Id   Name   State\n----------------------\n 1    test   running\n"
        );
        let mut t = Table::new(&["Id", "Name", "State"]);
        t.row(vec!["1".into(), "test".into(), "running".into()]);
        t.row(vec!["-".into(), "vm1".into(), "shut off".into()]);
        assert_eq!(
            t.render(true),
            " Id   Name   State\n-----------------------\n 1    test   running\n -    vm1    shut off\n"
        );
        let t = Table::new(&["Id", "Name", "State"]);
        assert_eq!(t.render(true), " Id   Name   State\n--------------------\n");
        let mut t = Table::new(&["Id", "Name", "State"]);
        t.row(vec!["1".into(), "test".into(), "running".into()]);
        assert_eq!(t.render(false), " 1   test   running\n");
    }

    #[test]
    fn last_column_is_not_padded_but_empty_cells_keep_separators() {
        let mut t = Table::new(&["Id", "Name", "State", "Title"]);
        t.row(vec![
            "1".into(),
            "test".into(),
            "running".into(),
            String::new(),
        ]);
        assert_eq!(
            t.render(true),
            " Id   Name   State     Title\n------------------------------\n 1    test   running   \n"
        );
    }
}
