//! A real SMTP server on loopback (mailin-embedded): EHLO, STARTTLS with a
//! self-signed certificate made for the test, AUTH PLAIN/LOGIN, and the
//! messages it received, raw.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

/// A received message: who logged in, envelope, and the raw DATA.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub user: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone)]
struct Receiver {
    user: String,
    password: String,
    current: Mail,
    logged_in: Option<String>,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl Handler for Receiver {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Mail {
            user: self.logged_in.clone(),
            from: from.to_string(),
            to: to.to_vec(),
            data: String::new(),
        };
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.mails
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.current));
        OK
    }

    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> Response {
        self.auth_login(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        if username == self.user && password == self.password {
            self.logged_in = Some(username.to_string());
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

pub struct Smtp {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    /// PEM of the self-signed certificate, for the client to trust.
    pub ca_file: Option<PathBuf>,
    pub user: String,
    pub password: String,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// `tls`: offer STARTTLS with a fresh self-signed certificate for `localhost`.
    pub fn start(tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mails: Arc<Mutex<Vec<Mail>>> = Default::default();
        let (user, password) = (
            "alerts@example.com".to_string(),
            "smtp-p@ss w0rd".to_string(),
        );
        let receiver = Receiver {
            user: user.clone(),
            password: password.clone(),
            current: Mail::default(),
            logged_in: None,
            mails: mails.clone(),
        };
        let mut server = Server::new(receiver);
        server.with_name("localhost");
        // With TLS, authentication is required (mailin only offers AUTH over TLS).
        let ca_file = if tls {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
            let certified =
                rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, certified.cert.pem()).unwrap();
            std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert_path.display().to_string(),
                    key_path: key_path.display().to_string(),
                })
                .unwrap();
            Some(cert_path)
        } else {
            server.with_ssl(SslConfig::None).unwrap();
            None
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        server.with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self {
            addr,
            mails,
            ca_file,
            user,
            password,
            _dir: dir,
        }
    }

    pub fn received(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}
