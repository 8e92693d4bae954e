//! A connected socket that is either TCP or a Unix domain socket, for servers and clients on
//! the same host: a Unix socket skips the TCP stack, which is most of the kernel's cost per
//! query on loopback.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Whether `addr` names a Unix socket (an absolute path) rather than `host:port`.
pub fn is_socket_path(addr: &str) -> bool {
    addr.starts_with('/')
}

/// A TCP or Unix stream; reads and writes go to the one it holds.
#[derive(Debug)]
pub enum NetStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl NetStream {
    /// Connects to `addr`: a Unix socket path (see [`is_socket_path`]) or `host:port`. TCP
    /// connections get TCP_NODELAY and keepalive (to detect dead peers on idle pooled
    /// connections).
    ///
    /// # Errors
    /// The connect failed.
    pub async fn connect(addr: &str) -> io::Result<NetStream> {
        if is_socket_path(addr) {
            return Ok(NetStream::Unix(UnixStream::connect(addr).await?));
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        Ok(NetStream::Tcp(stream))
    }

    /// Reads what is there without waiting (`WouldBlock` when nothing is).
    ///
    /// # Errors
    /// As the socket's own `try_read`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NetStream::Tcp(s) => s.try_read(buf),
            NetStream::Unix(s) => s.try_read(buf),
        }
    }

    /// TCP_NODELAY on a TCP socket; nothing on a Unix socket, which does not delay.
    ///
    /// # Errors
    /// As `TcpStream::set_nodelay`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            NetStream::Tcp(s) => s.set_nodelay(on),
            NetStream::Unix(_) => Ok(()),
        }
    }

    /// Turns the socket into its std form, deregistered from this runtime, to be registered
    /// with another one by [`StdNetStream::into_tokio`].
    ///
    /// # Errors
    /// As tokio's `into_std`.
    pub fn into_std(self) -> io::Result<StdNetStream> {
        Ok(match self {
            NetStream::Tcp(s) => StdNetStream::Tcp(s.into_std()?),
            NetStream::Unix(s) => StdNetStream::Unix(s.into_std()?),
        })
    }
}

/// A [`NetStream`] between runtimes.
#[derive(Debug)]
pub enum StdNetStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl StdNetStream {
    /// Registers the socket with the runtime this is called on.
    ///
    /// # Errors
    /// As tokio's `from_std`.
    pub fn into_tokio(self) -> io::Result<NetStream> {
        Ok(match self {
            StdNetStream::Tcp(s) => NetStream::Tcp(TcpStream::from_std(s)?),
            StdNetStream::Unix(s) => NetStream::Unix(UnixStream::from_std(s)?),
        })
    }
}

impl From<TcpStream> for NetStream {
    fn from(s: TcpStream) -> Self {
        NetStream::Tcp(s)
    }
}

impl AsyncRead for NetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            NetStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            NetStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            NetStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NetStream::Tcp(s) => s.is_write_vectored(),
            NetStream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            NetStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            NetStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn paths_are_sockets_and_host_ports_are_not() {
        assert!(is_socket_path("/run/mysqld/mysqld.sock"));
        assert!(!is_socket_path("127.0.0.1:3306"));
        assert!(!is_socket_path("db.example:3306"));
    }

    #[tokio::test]
    async fn a_unix_socket_path_connects_over_the_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let mut c = NetStream::connect(path.to_str().unwrap()).await.unwrap();
        assert!(matches!(c, NetStream::Unix(_)));
        c.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        server.await.unwrap();
        let moved = c.into_std().unwrap().into_tokio().unwrap();
        assert!(matches!(moved, NetStream::Unix(_)));
    }

    #[tokio::test]
    async fn a_missing_socket_is_an_error_not_a_tcp_attempt() {
        let e = NetStream::connect("/nonexistent/lagless-test.sock")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
