package lease

import (
	"testing"

	"github.com/multilangd/multilangd/properties"
)

// TestInitialClientVersion is Java
// MigrationClientVersionStateInitializer.getClientVersionForInitialization
// for every stored version × clientVersionConfig.
func TestInitialClientVersion(t *testing.T) {
	p1, c2, c3 := properties.ClientVersionCompatible2XPhase1, properties.ClientVersionCompatible2X, properties.ClientVersion3X
	cases := []struct{ stored, configured, want string }{
		{"", p1, ClientVersionInit},
		{"", c2, ClientVersionUpgr},
		{"", c3, ClientVersion3X},
		{ClientVersion2X, c3, ClientVersion2X},
		{ClientVersion2X, p1, ClientVersion2X},
		{ClientVersionUpgr, c3, ClientVersionUpgr},
		{ClientVersionUpgr, p1, ClientVersionUpgr},
		{ClientVersion3XRoll, c2, ClientVersion3XRoll},
		{ClientVersion3XRoll, p1, ClientVersion3XRoll},
		{ClientVersion3XRoll, c3, ClientVersion3X},
		{ClientVersion3X, c2, ClientVersion3X},
		{ClientVersion3X, p1, ClientVersion3X},
	}
	for _, c := range cases {
		got, err := InitialClientVersion(c.stored, c.configured)
		if err != nil || got != c.want {
			t.Errorf("InitialClientVersion(%q, %q) = %q, %v; want %q", c.stored, c.configured, got, err, c.want)
		}
	}
	if _, err := InitialClientVersion("CLIENT_VERSION_9X", c3); err == nil {
		t.Error("an unknown stored version must be an error (Java IllegalStateException)")
	}
	if _, err := InitialClientVersion("", "bogus"); err == nil {
		t.Error("an unknown configured version must be an error")
	}
}

// TestNextClientVersion: the transitions Java's onClientVersionChange
// callbacks accept; anything else keeps the current version.
func TestNextClientVersion(t *testing.T) {
	cases := []struct {
		cur, stored, want string
		ok                bool
	}{
		{ClientVersion2X, ClientVersionUpgr, ClientVersionUpgr, true},
		{ClientVersion2X, ClientVersion3X, ClientVersion2X, false},
		{ClientVersionUpgr, ClientVersion2X, ClientVersion2X, true},
		{ClientVersionUpgr, ClientVersion3XRoll, ClientVersion3XRoll, true},
		{ClientVersionUpgr, ClientVersion3X, ClientVersionUpgr, false},
		{ClientVersion3XRoll, ClientVersion2X, ClientVersion2X, true},
		{ClientVersion3XRoll, ClientVersion3X, ClientVersion3X, true},
		{ClientVersion3XRoll, ClientVersionUpgr, ClientVersion3XRoll, false},
		{ClientVersionUpgr, ClientVersionUpgr, ClientVersionUpgr, true},
		{ClientVersionUpgr, "", ClientVersionUpgr, true},
	}
	for _, c := range cases {
		got, ok := NextClientVersion(c.cur, c.stored)
		if got != c.want || ok != c.ok {
			t.Errorf("NextClientVersion(%q, %q) = %q, %v; want %q, %v", c.cur, c.stored, got, ok, c.want, c.ok)
		}
	}
	for _, v := range []string{ClientVersionInit, ClientVersion2X} {
		if PublishesWorkerMetrics(v) {
			t.Errorf("PublishesWorkerMetrics(%s) = true", v)
		}
	}
	for _, v := range []string{ClientVersionUpgr, ClientVersion3XRoll, ClientVersion3X} {
		if !PublishesWorkerMetrics(v) {
			t.Errorf("PublishesWorkerMetrics(%s) = false (Java starts the reporter there)", v)
		}
	}
}
