package config

import (
	"strings"
	"testing"
)

func TestRequireDeclaredSize(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"": false, "true": true, "1": true, "false": false} {
		env := map[string]string{}
		if v != "" {
			env["REQUIRE_DECLARED_SIZE"] = v
		}
		c, err := parse(lookup(env))
		if err != nil || c.RequireDeclaredSize != want {
			t.Errorf("REQUIRE_DECLARED_SIZE=%q: %v, %v; want %v", v, c.RequireDeclaredSize, err, want)
		}
	}
	if _, err := parse(lookup(map[string]string{"REQUIRE_DECLARED_SIZE": "sometimes"})); err == nil || !strings.Contains(err.Error(), "REQUIRE_DECLARED_SIZE") {
		t.Errorf("error %v does not name REQUIRE_DECLARED_SIZE", err)
	}
}
