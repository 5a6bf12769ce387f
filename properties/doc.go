// Package properties owns the KCL MultiLangDaemon .properties file: a reader
// with java.util.Properties syntax that keeps the line of every entry, and the
// conversion of those entries into a typed, validated Config whose defaults are
// the Java daemon's effective defaults.
//
// Where Java silently converts a bad value to 0 or to its default, Load
// returns an *Error naming file, line, key and value instead; unknown keys
// and keys that Java ignores produce Warnings. docs/compatibility.md lists
// every divergence from Java.
package properties
