//! The command line containerd gives a shim binary, in Go's flag syntax:
//! `-namespace NS -address ADDR -publish-binary BIN -id ID [-bundle DIR] [-debug] start|delete`,
//! or `-info`, `-v`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Launch (or find) the serving shim and print its address.
    Start,
    /// Clean up after a shim that is gone, and print a DeleteResponse.
    Delete,
    /// Serve the task API (what `start` launches).
    Serve,
    /// Print the version and exit.
    Version,
    /// Print a RuntimeInfo (name, version, options, the OCI runtime's features).
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    /// containerd's own (gRPC) address; part of the socket name.
    pub address: String,
    pub publish_binary: String,
    pub bundle: String,
    pub socket: String,
    pub debug: bool,
    pub action: Action,
}

#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Flags {
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Flags, UsageError> {
        let mut flags = Flags {
            namespace: String::new(),
            id: String::new(),
            address: String::new(),
            publish_binary: String::new(),
            bundle: String::new(),
            socket: String::new(),
            debug: false,
            action: Action::Serve,
        };
        let mut args = args.into_iter();
        let mut positional = Vec::new();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                positional.push(arg);
                continue;
            };
            if name.is_empty() {
                positional.extend(args.by_ref());
                break;
            }
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| UsageError(format!("flag needs an argument: -{name}")))
            };
            match name {
                "namespace" => flags.namespace = value(name)?,
                "id" => flags.id = value(name)?,
                "address" => flags.address = value(name)?,
                "publish-binary" => flags.publish_binary = value(name)?,
                "bundle" => flags.bundle = value(name)?,
                "socket" => flags.socket = value(name)?,
                "debug" => flags.debug = inline.as_deref() != Some("false"),
                "v" | "version" => flags.action = Action::Version,
                "info" => flags.action = Action::Info,
                other => {
                    return Err(UsageError(format!(
                        "flag provided but not defined: -{other}"
                    )))
                }
            }
        }
        match positional.as_slice() {
            [] => {}
            [a] if a == "start" => flags.action = Action::Start,
            [a] if a == "delete" => flags.action = Action::Delete,
            [a] => {
                return Err(UsageError(format!(
                    "unknown action {a:?}: expected start or delete"
                )))
            }
            more => {
                return Err(UsageError(format!(
                    "unexpected arguments: {}",
                    more.join(" ")
                )))
            }
        }
        if !matches!(flags.action, Action::Version | Action::Info) && flags.namespace.is_empty() {
            return Err(UsageError(
                "shim namespace cannot be empty (-namespace)".into(),
            ));
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Flags, UsageError> {
        Flags::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn containerd_start_line() {
        let f = parse("-namespace default -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id web start").unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
        assert_eq!(f.id, "web");
        assert_eq!(f.action, Action::Start);
    }

    #[test]
    fn delete_with_bundle_and_debug() {
        let f = parse("-namespace k8s.io -id c1 -bundle /b -debug delete").unwrap();
        assert_eq!(f.bundle, "/b");
        assert!(f.debug);
        assert_eq!(f.action, Action::Delete);
    }

    #[test]
    fn serve_is_the_default_and_equals_form_works() {
        let f = parse("--namespace=ns --id=x").unwrap();
        assert_eq!(f.action, Action::Serve);
        assert_eq!(f.namespace, "ns");
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(
            parse("-namespace ns -nope start").unwrap_err().0,
            "flag provided but not defined: -nope"
        );
        assert_eq!(
            parse("-namespace").unwrap_err().0,
            "flag needs an argument: -namespace"
        );
        assert_eq!(
            parse("-namespace ns restart").unwrap_err().0,
            "unknown action \"restart\": expected start or delete"
        );
        assert!(parse("-id x start").unwrap_err().0.contains("namespace"));
        assert_eq!(parse("-v").unwrap().action, Action::Version);
        assert_eq!(parse("-info").unwrap().action, Action::Info);
    }
}
