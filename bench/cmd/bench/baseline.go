package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// baseline is the release the run compares this tree with (-baseline): the
// docuvault binary built at a commit of the repository.
type baseline struct {
	rev     string // as given
	commit  string // the commit it names, abbreviated
	subject string // that commit's subject line
	bin     string
	build   time.Duration
}

// buildBaseline builds the docuvault binary at rev, a commit of the
// repository at repo, into dir: the commit's tree is extracted with `git
// archive` into a temporary directory (the repository's working tree and
// its worktrees stay as they are), built with its own go.mod, and removed.
func buildBaseline(ctx context.Context, repo, rev, dir string) (*baseline, error) {
	commit, err := gitOut(ctx, repo, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("-baseline %s: not a commit of %s", rev, repo)
	}
	b := &baseline{rev: rev, bin: filepath.Join(dir, "docuvault-baseline")}
	if b.commit, err = gitOut(ctx, repo, "rev-parse", "--short", commit); err != nil {
		return nil, err
	}
	if b.subject, err = gitOut(ctx, repo, "log", "-1", "--format=%s", commit); err != nil {
		return nil, err
	}
	src, err := os.MkdirTemp("", "dvb-baseline-src-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	if err := extract(ctx, repo, commit, src); err != nil {
		return nil, err
	}
	if b.build, err = buildDocuVault(ctx, src, b.bin); err != nil {
		return nil, err
	}
	return b, nil
}

// gitOut runs git in repo and returns its output, trimmed.
func gitOut(ctx context.Context, repo string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// extract writes the tree of commit into dir: `git archive | tar -x`.
func extract(ctx context.Context, repo, commit, dir string) error {
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", commit)
	archive.Dir = repo
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var archiveErr, untarErr strings.Builder
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("git archive %s: %v: %s", commit, err, archiveErr.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar -x of %s: %v: %s", commit, err, untarErr.String())
	}
	return nil
}

// baselineSuffix marks a system measured on the baseline's stack: the same
// upload, against the baseline's binary there.
const baselineSuffix = " (baseline)"

// onBaseline returns the baseline's system sys stands for, and whether it
// is one.
func (sys system) onBaseline() (system, bool) {
	plain, ok := strings.CutSuffix(string(sys), baselineSuffix)
	return system(plain), ok
}

// atBaseline is sys measured on the baseline's stack.
func atBaseline(sys system) system { return sys + baselineSuffix }
