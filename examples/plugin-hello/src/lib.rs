//! An example third-party driver: `hello:///` hosts one domain, `hello`,
//! that can be started, stopped and inspected.
//!
//! A driver crate depends on `virtkit-core` only. It registers itself with
//! [`virtkit_core::register_driver!`]; an application links it in with one
//! line, `use virtkit_plugin_hello as _;`, and then opens `hello:///` through
//! `virtkit::Connect` like any built-in driver. Everything the driver does
//! not implement answers virtkit's typed "unsupported" error (try
//! `networks()`).

use std::sync::{Arc, Mutex};

use virtkit_core::{
    Connection, CreateFlags, DestroyFlags, DomainInfo, DomainOps, DomainRef, DomainState, Driver,
    Error, ListFlags, NodeInfo, OpenFlags, Result, Uri, Uuid, async_trait,
};

/// The driver: a unit struct, registered at link time.
#[derive(Debug, Default, Clone, Copy)]
pub struct HelloDriver;

virtkit_core::register_driver!(HelloDriver);

const HELLO_UUID: Uuid = Uuid([
    0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2d, 0x40, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
]);

#[async_trait]
impl Driver for HelloDriver {
    fn name(&self) -> &'static str {
        "hello"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["hello"]
    }

    async fn open(&self, uri: &Uri, _flags: OpenFlags) -> Result<Arc<dyn Connection>> {
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(Error::invalid_arg(format!(
                "hello driver has only one host: use hello:/// (got path '{}')",
                uri.path()
            )));
        }
        Ok(Arc::new(HelloConnection {
            running: Mutex::new(false),
        }))
    }
}

/// A connection: the state of the one domain.
#[derive(Debug)]
pub struct HelloConnection {
    running: Mutex<bool>,
}

impl HelloConnection {
    fn handle(&self) -> DomainRef {
        let running = *self.running.lock().unwrap_or_else(|p| p.into_inner());
        DomainRef {
            name: "hello".into(),
            uuid: HELLO_UUID,
            id: running.then_some(1),
        }
    }

    fn check(&self, d: &DomainRef) -> Result<()> {
        if d.uuid != HELLO_UUID {
            return Err(Error::no_domain(format!(
                "no domain with matching uuid '{}'",
                d.uuid
            )));
        }
        Ok(())
    }

    fn set_running(&self, on: bool) -> Result<()> {
        let mut r = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if *r == on {
            return Err(Error::operation_invalid(if on {
                "domain is already running"
            } else {
                "domain is not running"
            }));
        }
        *r = on;
        Ok(())
    }
}

#[async_trait]
impl Connection for HelloConnection {
    fn driver(&self) -> &'static str {
        "hello"
    }

    fn uri(&self) -> String {
        "hello:///".into()
    }

    async fn hypervisor_type(&self) -> Result<String> {
        Ok("HELLO".into())
    }

    async fn node_info(&self) -> Result<NodeInfo> {
        Ok(NodeInfo {
            model: "hello".into(),
            memory_kib: 1024 * 1024,
            cpus: 1,
            mhz: 1000,
            nodes: 1,
            sockets: 1,
            cores: 1,
            threads: 1,
        })
    }

    fn domains(&self) -> Result<&dyn DomainOps> {
        Ok(self)
    }
}

#[async_trait]
impl DomainOps for HelloConnection {
    fn driver(&self) -> &'static str {
        "hello"
    }

    async fn list_all(&self, _flags: ListFlags) -> Result<Vec<DomainRef>> {
        Ok(vec![self.handle()])
    }

    async fn lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        if name == "hello" {
            Ok(self.handle())
        } else {
            Err(Error::no_domain(format!(
                "no domain with matching name '{name}'"
            )))
        }
    }

    async fn create(&self, dom: &DomainRef, _flags: CreateFlags) -> Result<DomainRef> {
        self.check(dom)?;
        self.set_running(true)?;
        Ok(self.handle())
    }

    async fn destroy(&self, dom: &DomainRef, _flags: DestroyFlags) -> Result<()> {
        self.check(dom)?;
        self.set_running(false)
    }

    async fn state(&self, dom: &DomainRef) -> Result<(DomainState, i32)> {
        self.check(dom)?;
        Ok(if self.handle().id.is_some() {
            (DomainState::Running, 1)
        } else {
            (DomainState::Shutoff, 0)
        })
    }

    async fn info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        let (state, _) = self.state(dom).await?;
        Ok(DomainInfo {
            state,
            max_mem_kib: 65536,
            memory_kib: 65536,
            nr_virt_cpu: 1,
            cpu_time_ns: 0,
        })
    }
}
