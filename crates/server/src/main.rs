//! The chat server. Everything happens in `chat-core`; see the README.

fn main() -> std::process::ExitCode {
    chat_core::main()
}
