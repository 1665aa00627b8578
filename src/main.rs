fn main() -> std::process::ExitCode {
    nslab::cli::main()
}
