// Package kinesisstub is a Kinesis stand-in for benchmarks only: a local HTTP
// server speaking the awsJson1.1 protocol that serves GetRecords pages of a
// pre-loaded, read-only stream from memory (valid JSON, real-looking 56-digit
// sequence numbers, opaque iterators). kinesalite spends a core of its own per
// GetRecords stream; this server spends almost nothing, so a benchmark run
// against it measures the client, not the emulator (docs/performance.md).
//
// It answers ListShards, DescribeStreamSummary, GetShardIterator and
// GetRecords; anything else gets a 400 UnknownOperationException. It never
// writes: the records are fixed by Config when the server starts.
package kinesisstub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/multilangd/multilangd/retrieval/kpl"
)

// Config describes the pre-loaded stream.
type Config struct {
	Stream string
	Shards int
	// Records is the number of user records per shard.
	Records int
	// RecordSize is each user record's payload size in bytes.
	RecordSize int
	// AggSize > 0 packs that many user records into each KPL aggregate.
	AggSize int
	// MaxResponseBytes caps one GetRecords response's record data, as
	// Kinesis's 10 MB (default 10 MB).
	MaxResponseBytes int
}

// shard is one shard's pre-built records.
type shard struct {
	id         string
	start, end string // hash key range, decimal
	seqs       []string
	objs       [][]byte // each Kinesis record as a JSON object
	sizes      []int    // each Kinesis record's data size in bytes
}

// Server is a running stand-in.
type Server struct {
	// URL is the endpoint, e.g. http://127.0.0.1:34567.
	URL string
	// Last maps each shard id to its last Kinesis sequence number.
	Last map[string]string

	cfg    Config
	shards []*shard
	byID   map[string]*shard
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
}

// arrival is every record's ApproximateArrivalTimestamp (epoch seconds with
// milliseconds, as Kinesis writes it).
const arrival = "1764500000.123"

// Start builds the stream and serves it on a free loopback port.
func Start(cfg Config) (*Server, error) {
	if cfg.Shards <= 0 || cfg.Records < 0 || cfg.RecordSize < 0 {
		return nil, fmt.Errorf("kinesisstub: bad config %+v", cfg)
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 10 << 20
	}
	s := &Server{cfg: cfg, Last: map[string]string{}, byID: map[string]*shard{}, done: make(chan struct{})}
	for i := 0; i < cfg.Shards; i++ {
		sh, err := buildShard(cfg, i)
		if err != nil {
			return nil, err
		}
		s.shards = append(s.shards, sh)
		s.byID[sh.id] = sh
		if n := len(sh.seqs); n > 0 {
			s.Last[sh.id] = sh.seqs[n-1]
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	go func() { // owned by Close, which waits for done
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// hashRange splits the 128-bit hash key space evenly: shard i of n.
func hashRange(i, n int) (string, string) {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	start := new(big.Int).Mul(step, big.NewInt(int64(i)))
	end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
	if i == n-1 {
		end.Sub(space, big.NewInt(1))
	}
	return start.String(), end.String()
}

func buildShard(cfg Config, i int) (*shard, error) {
	sh := &shard{id: fmt.Sprintf("shardId-%012d", i)}
	sh.start, sh.end = hashRange(i, cfg.Shards)
	payload := bytes.Repeat([]byte("x"), cfg.RecordSize)
	add := func(pk string, data []byte) {
		seq := fmt.Sprintf("4959%02d%050d", i%100, len(sh.seqs)+1)
		var b []byte
		b = append(b, `{"Data":"`...)
		b = base64.StdEncoding.AppendEncode(b, data)
		b = append(b, `","PartitionKey":"`...)
		b = append(b, pk...)
		b = append(b, `","SequenceNumber":"`...)
		b = append(b, seq...)
		b = append(b, `","ApproximateArrivalTimestamp":`+arrival+`}`...)
		sh.seqs = append(sh.seqs, seq)
		sh.objs = append(sh.objs, b)
		sh.sizes = append(sh.sizes, len(data))
	}
	if cfg.AggSize <= 0 {
		for r := 0; r < cfg.Records; r++ {
			add(fmt.Sprintf("pk-%d-%d", i, r), payload)
		}
		return sh, nil
	}
	for r := 0; r < cfg.Records; {
		var urs []kpl.UserRecord
		for j := 0; j < cfg.AggSize && r < cfg.Records; j++ {
			// The explicit hash key routes every sub-record into this shard,
			// so the de-aggregator's hash range filter keeps them.
			urs = append(urs, kpl.UserRecord{PartitionKey: fmt.Sprintf("agg-%d-%d", i, r), ExplicitHashKey: sh.start, Data: payload})
			r++
		}
		blob, err := kpl.Aggregate(urs)
		if err != nil {
			return nil, err
		}
		add(urs[0].PartitionKey, blob)
	}
	return sh, nil
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	var in struct {
		StreamName             string
		ShardId                string
		ShardIteratorType      string
		StartingSequenceNumber string
		ShardIterator          string
		Limit                  int
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			fail(w, "SerializationException", err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "ListShards":
		s.listShards(w)
	case "DescribeStreamSummary":
		fmt.Fprintf(w, `{"StreamDescriptionSummary":{"StreamName":%q,"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/%s","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"PROVISIONED"},"RetentionPeriodHours":24,"StreamCreationTimestamp":1764500000,"EnhancedMonitoring":[{"ShardLevelMetrics":[]}],"EncryptionType":"NONE","OpenShardCount":%d,"ConsumerCount":0}}`,
			s.cfg.Stream, s.cfg.Stream, len(s.shards))
	case "GetShardIterator":
		s.getShardIterator(w, in.ShardId, in.ShardIteratorType, in.StartingSequenceNumber)
	case "GetRecords":
		s.getRecords(w, in.ShardIterator, in.Limit)
	default:
		fail(w, "UnknownOperationException", op)
	}
}

func fail(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	_, _ = w.Write(b)
}

func (s *Server) listShards(w http.ResponseWriter) {
	var b strings.Builder
	b.WriteString(`{"Shards":[`)
	for i, sh := range s.shards {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ShardId":%q,"HashKeyRange":{"StartingHashKey":%q,"EndingHashKey":%q},"SequenceNumberRange":{"StartingSequenceNumber":"4959%02d%050d"}}`,
			sh.id, sh.start, sh.end, i%100, 0)
	}
	b.WriteString(`]}`)
	_, _ = io.WriteString(w, b.String())
}

func (s *Server) getShardIterator(w http.ResponseWriter, id, typ, seq string) {
	sh := s.byID[id]
	if sh == nil {
		fail(w, "ResourceNotFoundException", "shard "+id+" not found")
		return
	}
	pos := 0
	switch typ {
	case "TRIM_HORIZON", "AT_TIMESTAMP":
	case "LATEST":
		pos = len(sh.seqs)
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		pos = s.position(sh, seq)
		if typ == "AFTER_SEQUENCE_NUMBER" && pos < len(sh.seqs) && sh.seqs[pos] == seq {
			pos++
		}
	default:
		fail(w, "InvalidArgumentException", "iterator type "+typ)
		return
	}
	fmt.Fprintf(w, `{"ShardIterator":%q}`, iterator(sh.id, pos))
}

// position is the index of the first record whose sequence number is ≥ seq
// (all are 56 digits, so string order is numeric order).
func (s *Server) position(sh *shard, seq string) int {
	lo, hi := 0, len(sh.seqs)
	for lo < hi {
		m := (lo + hi) / 2
		if sh.seqs[m] < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func iterator(id string, pos int) string {
	return base64.StdEncoding.EncodeToString([]byte(id + "/" + strconv.Itoa(pos)))
}

func (s *Server) getRecords(w http.ResponseWriter, it string, limit int) {
	raw, err := base64.StdEncoding.DecodeString(it)
	id, p, ok := strings.Cut(string(raw), "/")
	pos, perr := strconv.Atoi(p)
	sh := s.byID[id]
	if err != nil || !ok || perr != nil || sh == nil || pos < 0 || pos > len(sh.seqs) {
		fail(w, "InvalidArgumentException", "bad shard iterator")
		return
	}
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	end, size := pos, 0
	for end < len(sh.seqs) && end-pos < limit && (end == pos || size+sh.sizes[end] <= s.cfg.MaxResponseBytes) {
		size += sh.sizes[end]
		end++
	}
	n := 64
	for _, o := range sh.objs[pos:end] {
		n += len(o) + 1
	}
	b := make([]byte, 0, n+64)
	b = append(b, `{"Records":[`...)
	for i, o := range sh.objs[pos:end] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	behind := 0
	if end < len(sh.seqs) {
		behind = 1000
	}
	b = append(b, `],"NextShardIterator":"`...)
	b = append(b, iterator(id, end)...)
	b = append(b, `","MillisBehindLatest":`...)
	b = strconv.AppendInt(b, int64(behind), 10)
	b = append(b, '}')
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
