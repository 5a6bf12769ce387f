// Command minchild is the bench's minimal record processor: it answers
// every action at once and checkpoints the last record of each
// processRecords batch, finding it by scanning the line from its end
// instead of decoding it, so the child costs as little as possible.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
)

var (
	in  = bufio.NewReaderSize(os.Stdin, 1<<20)
	out = bufio.NewWriter(os.Stdout)
)

func send(s string) {
	out.WriteString("\n" + s + "\n")
	out.Flush()
}

// line reads one whole line however long it is.
func line() ([]byte, bool) {
	var acc []byte
	for {
		frag, err := in.ReadSlice('\n')
		acc = append(acc, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return acc, err == nil
	}
}

func action(l []byte) string {
	const p = `{"action":"`
	if !bytes.HasPrefix(l, []byte(p)) {
		return ""
	}
	l = l[len(p):]
	if i := bytes.IndexByte(l, '"'); i >= 0 {
		return string(l[:i])
	}
	return ""
}

func main() {
	for {
		l, ok := line()
		if !ok {
			return
		}
		a := action(l)
		switch a {
		case "":
			continue
		case "processRecords":
			if i := bytes.LastIndex(l, []byte(`"sequenceNumber":"`)); i >= 0 {
				rest := l[i+len(`"sequenceNumber":"`):]
				seq := rest[:bytes.IndexByte(rest, '"')]
				sub := "0"
				if j := bytes.Index(rest, []byte(`"subSequenceNumber":`)); j >= 0 {
					s := rest[j+len(`"subSequenceNumber":`):]
					k := 0
					for k < len(s) && s[k] >= '0' && s[k] <= '9' {
						k++
					}
					sub = string(s[:k])
				}
				send(fmt.Sprintf(`{"action":"checkpoint","sequenceNumber":"%s","subSequenceNumber":%s}`, seq, sub))
				if _, ok := line(); !ok { // the checkpoint reply
					return
				}
			}
		case "shardEnded":
			send(`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}`)
			if _, ok := line(); !ok {
				return
			}
		case "checkpoint":
			continue
		}
		send(`{"action":"status","responseFor":"` + a + `"}`)
	}
}
