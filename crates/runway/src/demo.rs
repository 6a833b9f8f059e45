pub async fn run() -> anyhow::Result<std::process::ExitCode> { todo!() }
