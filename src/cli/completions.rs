//! `nslab completions bash|zsh|fish`: shell completion scripts from the clap definition
//! (clap_complete), plus completion of the labs that are up for `destroy`, `show` and
//! `graph` (the scripts ask `nslab completions --labs`, which reads the journals).

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Failed};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// bash, zsh or fish
    #[arg(required_unless_present = "labs", value_parser = ["bash", "zsh", "fish"])]
    shell: Option<String>,
    /// Print the names of the labs that are up, one a line (what the scripts complete)
    #[arg(long, hide = true)]
    labs: bool,
}

/// Subcommands whose first argument is a lab name.
const LAB_COMMANDS: [&str; 3] = ["destroy", "show", "graph"];

pub fn run(a: Args) -> Result<(), Failed> {
    if a.labs {
        for l in crate::lab::journal::labs() {
            println!("{l}");
        }
        return Ok(());
    }
    let shell = a.shell.as_deref().unwrap_or_default();
    print!("{}", script(shell));
    Ok(())
}

/// The completion script for `shell` ("bash", "zsh" or "fish").
pub fn script(shell: &str) -> String {
    let which = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        _ => Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(which, &mut Cli::command(), "nslab", &mut buf);
    let generated = String::from_utf8(buf).expect("clap_complete writes UTF-8");
    match which {
        Shell::Bash => format!("{generated}{}", bash_labs()),
        Shell::Zsh => zsh_labs(&generated),
        _ => format!("{generated}{}", fish_labs()),
    }
}

fn bash_labs() -> String {
    format!(
        r#"
# Lab names for {cmds}: the labs that are up.
_nslab_with_labs() {{
    if [[ $COMP_CWORD -eq 2 && "${{COMP_WORDS[2]}}" != -* ]]; then
        case "${{COMP_WORDS[1]}}" in
            {alts})
                COMPREPLY=( $(compgen -W "$(nslab completions --labs 2>/dev/null)" -- "${{COMP_WORDS[2]}}") )
                return 0 ;;
        esac
    fi
    _nslab "$@"
}}
complete -F _nslab_with_labs -o nosort -o bashdefault -o default nslab
"#,
        cmds = LAB_COMMANDS.join(", "),
        alts = LAB_COMMANDS.join("|"),
    )
}

/// clap completes a positional `lab` with `_default` (files): lab names instead.
fn zsh_labs(generated: &str) -> String {
    let helper = "\n_nslab_labs() {\n    local -a labs\n    labs=(${(f)\"$(nslab completions --labs 2>/dev/null)\"})\n    _describe 'lab' labs\n}\n";
    let mut out = String::new();
    let mut lines = generated.lines();
    if let Some(first) = lines.next() {
        out += first;
        out += "\n";
        out += helper;
    }
    for l in lines {
        if (l.contains("'::lab -- ") || l.contains("':lab -- ")) && l.ends_with(":_default' \\") {
            out += &l.replace(":_default' \\", ":_nslab_labs' \\");
        } else {
            out += l;
        }
        out += "\n";
    }
    out
}

fn fish_labs() -> String {
    let cond: Vec<String> =
        LAB_COMMANDS.iter().map(|c| format!("__fish_nslab_using_subcommand {c}")).collect();
    format!(
        "\n# Lab names for {}: the labs that are up.\ncomplete -c nslab -n \"{}\" -f -a \"(nslab completions --labs 2>/dev/null)\"\n",
        LAB_COMMANDS.join(", "),
        cond.join("; or ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_names_the_subcommands_and_completes_labs() {
        for sh in ["bash", "zsh", "fish"] {
            let s = script(sh);
            assert!(s.contains("destroy") && s.contains("capture"), "{sh}");
            assert!(s.contains("nslab completions --labs"), "{sh}");
        }
        let z = script("zsh");
        assert!(z.contains(":_nslab_labs' \\"), "zsh: the lab argument is not completed:\n{z}");
        assert!(script("fish").contains("__fish_nslab_using_subcommand destroy"));
    }
}
