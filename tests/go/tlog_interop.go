// Independent check of patient's published transparency log with Go's
// golang.org/x/mod/sumdb/note and sumdb/tlog (Debian's copy, built offline):
//
//	tlog_interop DIR VKEY [PAIRS]
//
// DIR is a published log (checkpoint, tile/, entries/); VKEY the
// signed-note verifier key. Checks the checkpoint signature, that the tiles
// hash to the checkpoint's root, an inclusion proof for every entry (from
// the entry bundles), and, with PAIRS (lines "m n oldroot newroot
// proof..." in hex, from tests/tlog_tool pairs), that every consistency
// proof and root equals Go's. Prints "ok ..." and exits 0, or the first
// difference and exits 1.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(f string, a ...interface{}) {
	fmt.Printf("FAIL: "+f+"\n", a...)
	os.Exit(1)
}

// C2SP tlog-tiles names: tile/<L>/<N>[.p/<W>], N in x-prefixed groups of 3.
func nPath(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func tilePath(prefix string, n int64, w int) string {
	p := prefix + nPath(n)
	if w != 256 {
		p += fmt.Sprintf(".p/%d", w)
	}
	return p
}

type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return 8 }
func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := os.ReadFile(filepath.Join(d.dir, tilePath(fmt.Sprintf("tile/%d/", t.L), t.N, t.W)))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
func (d dirTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func main() {
	if len(os.Args) < 3 {
		fail("usage: tlog_interop DIR VKEY [PAIRS]")
	}
	dir := os.Args[1]
	v, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("verifier key: %v", err)
	}
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("checkpoint note: %v", err)
	}
	// tlog-checkpoint body: origin, size, base64 root, extension lines.
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != v.Name() {
		fail("checkpoint text %q (key %q)", n.Text, v.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size <= 0 {
		fail("tree size %q", lines[1])
	}
	rb, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rb) != tlog.HashSize {
		fail("root %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], rb)
	tree := tlog.Tree{N: size, Hash: root}
	hr := tlog.TileHashReader(tree, dirTiles{dir})
	th, err := tlog.TreeHash(size, hr)
	if err != nil || th != root {
		fail("tiles do not hash to the checkpoint root: %v", err)
	}
	// Every entry: from its bundle (JSON Lines), proven into the tree.
	var entry [][]byte
	for b := int64(0); b*256 < size; b++ {
		w := 256
		if (b+1)*256 > size {
			w = int(size - b*256)
		}
		data, err := os.ReadFile(filepath.Join(dir, tilePath("entries/", b, w)))
		if err != nil {
			fail("entry bundle %d: %v", b, err)
		}
		ls := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		if len(ls) != w {
			fail("entry bundle %d holds %d lines, not %d", b, len(ls), w)
		}
		entry = append(entry, ls...)
	}
	for i := int64(0); i < size; i++ {
		p, err := tlog.ProveRecord(size, i, hr)
		if err != nil {
			fail("prove record %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(entry[i])); err != nil {
			fail("entry %d not in the tree: %v", i, err)
		}
	}
	pairs := 0
	if len(os.Args) > 3 {
		f, err := os.Open(os.Args[3])
		if err != nil {
			fail("%v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			m, _ := strconv.ParseInt(fs[0], 10, 64)
			nn, _ := strconv.ParseInt(fs[1], 10, 64)
			if nn > size {
				fail("pair %d %d beyond the published tree %d", m, nn, size)
			}
			om, _ := tlog.TreeHash(m, hr)
			on, _ := tlog.TreeHash(nn, hr)
			if hex.EncodeToString(om[:]) != fs[2] || hex.EncodeToString(on[:]) != fs[3] {
				fail("roots of %d / %d differ from Go's", m, nn)
			}
			gp, err := tlog.ProveTree(nn, m, hr)
			if err != nil {
				fail("go prove %d %d: %v", m, nn, err)
			}
			if len(gp) != len(fs)-4 {
				fail("proof %d->%d: patient has %d hashes, Go %d", m, nn, len(fs)-4, len(gp))
			}
			var pp tlog.TreeProof
			for k, h := range gp {
				if hex.EncodeToString(h[:]) != fs[4+k] {
					fail("proof %d->%d hash %d differs from Go's", m, nn, k)
				}
				var x tlog.Hash
				b, _ := hex.DecodeString(fs[4+k])
				copy(x[:], b)
				pp = append(pp, x)
			}
			if err := tlog.CheckTree(pp, nn, on, m, om); err != nil {
				fail("Go rejects patient's proof %d->%d: %v", m, nn, err)
			}
			pairs++
		}
	}
	fmt.Printf("ok: note signed by %s, tree %d, %d inclusion proofs, %d consistency proofs equal Go's\n",
		v.Name(), size, size, pairs)
}
