//! The chat server. Everything happens in `chat-core`; see the README.

/// mimalloc returns freed memory to the system where glibc's allocator keeps it in
/// per-thread arenas: each argon2 hash (19 MiB) on a blocking thread otherwise left its arena
/// that large (measured: 1.5 GiB resident after a few hundred logins, see the README).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    chat_core::main()
}
