package api_test

import (
	"testing"

	"github.com/docuvault/docuvault/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
