package cli

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

var completionCommand = &command{
	name:    "completion",
	args:    "bash|zsh|fish",
	summary: "print a shell completion script",
	help: `Prints a script that completes lex's commands, their flags and file names
in bash, zsh or fish. Install it with, for instance:

  lex completion bash > /etc/bash_completion.d/lex
  lex completion zsh  > "${fpath[1]}/_lex"
  lex completion fish > ~/.config/fish/completions/lex.fish`,
	run: runCompletion,
}

func runCompletion(e *env, args []string) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		return flag.ErrHelp
	}
	if len(args) != 1 {
		return usagef("want one shell: bash, zsh or fish")
	}
	gen, ok := map[string]func(io.Writer, []completion){"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}[args[0]]
	if !ok {
		return usagef("shell %q: want bash, zsh or fish", args[0])
	}
	gen(e.stdout, completions())
	return nil
}

// completion is what the scripts know of one command, read from its synopsis
// (command.args), so they stay in step with the commands.
type completion struct {
	name, summary string
	flags         []string // "--to", "-o"
	subs          []string // subcommands: "test", "check", "explain"
}

// globalFlags are lex's flags before the command; valueFlags take a value.
var (
	globalFlags = []string{"--config", "-v", "--json", "--transport", "--reconnect", "--version"}
	valueFlags  = []string{"--config", "--transport", "--reconnect"}
	flagRE      = regexp.MustCompile(`(?:^|[\s\[|])(--?[a-z][a-z0-9-]*)`)
	subRE       = regexp.MustCompile(`^[a-z]+$`)
)

func completions() []completion {
	var cs []completion
	for _, c := range append(slices.Clone(commands), &command{name: "help", summary: "show help for a command or the configuration"}) {
		cc := completion{name: c.name, summary: c.summary}
		for _, m := range flagRE.FindAllStringSubmatch(c.args, -1) {
			if !slices.Contains(cc.flags, m[1]) {
				cc.flags = append(cc.flags, m[1])
			}
		}
		for _, alt := range strings.Split(c.args, "|") {
			if w := strings.Fields(alt); len(w) > 0 && subRE.MatchString(w[0]) {
				cc.subs = append(cc.subs, w[0])
			}
		}
		if c.name == "help" {
			for _, o := range commands {
				cc.subs = append(cc.subs, o.name)
			}
			cc.subs = append(cc.subs, "config")
		}
		if c.name == "completion" {
			cc.subs = []string{"bash", "zsh", "fish"}
		}
		cs = append(cs, cc)
	}
	return cs
}

func bashCompletion(w io.Writer, cs []completion) {
	var names []string
	for _, c := range cs {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, `# bash completion for lex; "lex completion bash" writes it.
_lex() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i
    case $prev in
        --config|-o|--out|--receipt) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --transport) COMPREPLY=($(compgen -W "auto quic tcp" -- "$cur")); return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            %s) ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $cmd in
        "") COMPREPLY=($(compgen -W "%s %s" -- "$cur")) ;;
`, strings.Join(valueFlags, "|"), strings.Join(names, " "), strings.Join(globalFlags, " "))
	for _, c := range cs {
		fmt.Fprintf(w, "        %s) COMPREPLY=($(compgen -W %q -- \"$cur\"))", c.name, strings.Join(append(slices.Clone(c.subs), c.flags...), " "))
		if len(c.subs) == 0 || c.name == "policy" {
			fmt.Fprint(w, `; [[ $cur == -* ]] || COMPREPLY+=($(compgen -f -- "$cur"))`)
		}
		fmt.Fprint(w, " ;;\n")
	}
	fmt.Fprint(w, `    esac
}
complete -o filenames -F _lex lex
`)
}

func zshCompletion(w io.Writer, cs []completion) {
	fmt.Fprint(w, `#compdef lex
# zsh completion for lex; "lex completion zsh" writes it.
_lex() {
    local -a cmds
    cmds=(
`)
	for _, c := range cs {
		fmt.Fprintf(w, "        %s\n", zshQuote(c.name+":"+c.summary))
	}
	fmt.Fprint(w, `    )
    local curcontext=$curcontext state line
    _arguments -C \
        '--config[configuration file]:file:_files' \
        '-v[verbose]' \
        '--json[JSON on stdout]' \
        '--transport[transport]:transport:(auto quic tcp)' \
        '--reconnect[how long to keep reconnecting]:duration:' \
        '--version[print the version]' \
        '1:command:->cmd' \
        '*::arg:->args'
    case $state in
        cmd) _describe 'lex command' cmds ;;
        args)
            case $words[1] in
`)
	for _, c := range cs {
		var words []string
		words = append(words, c.subs...)
		words = append(words, c.flags...)
		fmt.Fprintf(w, "                %s) _alternative %s 'files:file:_files' ;;\n", c.name, zshQuote("words:"+c.name+":("+strings.Join(words, " ")+")"))
	}
	fmt.Fprint(w, `            esac ;;
    esac
}
_lex "$@"
`)
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fishCompletion(w io.Writer, cs []completion) {
	fmt.Fprint(w, `# fish completion for lex; "lex completion fish" writes it.
complete -c lex -l config -r -F -d 'configuration file'
complete -c lex -s v -d 'verbose'
complete -c lex -l json -d 'JSON on stdout'
complete -c lex -l transport -x -a 'auto quic tcp' -d 'transport'
complete -c lex -l reconnect -x -d 'how long to keep reconnecting'
complete -c lex -l version -d 'print the version'
`)
	var names []string
	for _, c := range cs {
		names = append(names, c.name)
	}
	top := "'not __fish_seen_subcommand_from " + strings.Join(names, " ") + "'"
	fmt.Fprintf(w, "complete -c lex -n %s -f\n", top) // before a command: no file names
	for _, c := range cs {
		fmt.Fprintf(w, "complete -c lex -n %s -a %s -d %s\n", top, c.name, zshQuote(c.summary))
		seen := "'__fish_seen_subcommand_from " + c.name + "'"
		for _, s := range c.subs {
			fmt.Fprintf(w, "complete -c lex -n %s -a %s\n", seen, s)
		}
		for _, f := range c.flags {
			if l, ok := strings.CutPrefix(f, "--"); ok {
				fmt.Fprintf(w, "complete -c lex -n %s -l %s\n", seen, l)
			} else {
				fmt.Fprintf(w, "complete -c lex -n %s -s %s\n", seen, strings.TrimPrefix(f, "-"))
			}
		}
	}
}
