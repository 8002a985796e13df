package classify_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/docuvault/docuvault/shared/classify"
)

func FuzzSlow(f *testing.F) {
	texts := classify.SampleTexts()
	pdf := classify.SamplePDF(texts["invoice"])
	docx := classify.SampleDOCX(texts["contract"])
	for _, seed := range [][]byte{pdf, pdf[:len(pdf)/2], docx, classify.SampleODT(texts["letter"]), cidFontPDF(f), formXObjectPDF(f), imageOnlyPDF(), []byte(texts["payslip"])} {
		f.Add(seed)
	}
	c := classify.New(classify.DefaultRules())
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan bool)
		go func() {
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				name := fmt.Sprintf("/tmp/hang-%x", sha256.Sum256(data))
				os.WriteFile(name, data, 0o644)
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				os.WriteFile(name+".stack", buf[:n], 0o644)
			}
		}()
		c.Classify(data, "")
		close(done)
	})
}
