// Command multilangd is a drop-in replacement for the Java KCL
// MultiLangDaemon: it reads the same .properties file, shares the same
// DynamoDB lease table and drives unchanged amazon_kclpy / aws-kcl record
// processors over the same JSON-lines protocol.
//
// This package owns the command line (Java-compatible flags, subcommands),
// logger construction, signal wiring and exit codes.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
