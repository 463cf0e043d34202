// hockeypuck-settings-check reads a Hockeypuck config file the way the daemon does and prints,
// as JSON, the settings it yields and the keys that no setting took (Hockeypuck silently
// ignores those). Written by the charm's team for its tests; built inside Hockeypuck's module
// so that it uses the daemon's own parser (server.ParseSettings) and TOML library.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/sprig/v3"

	"hockeypuck/server"
)

type report struct {
	Settings  *server.Settings `json:"settings"`
	Undecoded []string         `json:"undecoded"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hockeypuck-settings-check CONFIG")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	settings, err := server.ParseSettings(string(data))
	if err != nil {
		fmt.Fprintf(os.Stderr, "ParseSettings: %v\n", err)
		os.Exit(1)
	}
	// The same template step again, to learn which keys the TOML decoder left unused.
	tmpl, err := template.New("config").Funcs(sprig.TxtFuncMap()).Parse(string(data))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var rendered bytes.Buffer
	if err := tmpl.Execute(&rendered, map[string]string{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var doc struct {
		Hockeypuck server.Settings `toml:"hockeypuck"`
	}
	doc.Hockeypuck = server.DefaultSettings()
	meta, err := toml.Decode(rendered.String(), &doc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := report{Settings: settings, Undecoded: []string{}}
	for _, key := range meta.Undecoded() {
		out.Undecoded = append(out.Undecoded, key.String())
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", " ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
