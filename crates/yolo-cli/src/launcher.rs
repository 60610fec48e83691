//! `yolo`: the launcher. Answers help, version, cfg, copy-cfg and `bench start` itself, without
//! loading libtorch (milliseconds), and execs `yolo-engine` for every other command.

mod launch;
mod light;
mod startbench;

fn main() {
    light::init_process();
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // Words that are not UTF-8 (a path, say) go to the engine, which reports them.
    let words: Option<Vec<String>> = raw.iter().map(|a| a.to_str().map(String::from)).collect();
    if let Some(cmd) = words.as_deref().and_then(light::light_command) {
        if let Err(e) = light::run_light(cmd) {
            eprintln!("Error: {e}");
            std::process::exit(2);
        }
        return;
    }
    if let Some(rest) = words.as_deref().and_then(startbench::command) {
        if let Err(e) = startbench::run(rest) {
            eprintln!("Error: {e:#}");
            std::process::exit(2);
        }
        return;
    }
    let why = launch::exec_engine(&raw);
    eprintln!("Error: {why}");
    std::process::exit(2);
}
