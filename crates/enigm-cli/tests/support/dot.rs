//! A DNS-over-TLS upstream (RFC 7858) for the tests of the device's encrypted-DNS stub.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{RData, Record, rdata::A};
use hickory_proto::serialize::binary::{BinDecodable as _, BinEncodable as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The address the upstream answers every A question with.
pub(crate) const ANSWER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 7);

/// A DNS-over-TLS upstream answering every A question with [`ANSWER`]; counts the questions.
pub(crate) async fn upstream(
    bind: &str,
    certified: &rcgen::CertifiedKey,
) -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(bind).await.unwrap();
    let address = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut length = [0u8; 2];
                if tls.read_exact(&mut length).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
                tls.read_exact(&mut query).await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let query = Message::from_bytes(&query).unwrap();
                let mut answer = Message::new();
                answer
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .add_queries(query.queries().iter().cloned());
                let name = query.queries()[0].name().clone();
                answer.add_answer(Record::from_rdata(name, 60, RData::A(A(ANSWER))));
                let bytes = answer.to_bytes().unwrap();
                let length = u16::try_from(bytes.len()).unwrap().to_be_bytes();
                tls.write_all(&length).await.unwrap();
                tls.write_all(&bytes).await.unwrap();
                tls.flush().await.unwrap();
            });
        }
    });
    (address, asked, task)
}
