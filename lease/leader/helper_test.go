package leader

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
)

const (
	helperEnv         = "MULTILANGD_LEADER_HELPER" // worker id
	helperEndpointEnv = "MULTILANGD_LEADER_HELPER_ENDPOINT"
	helperTableEnv    = "MULTILANGD_LEADER_HELPER_TABLE"
	helperLeaseEnv    = "MULTILANGD_LEADER_HELPER_LEASE_MS"
)

// helperMain runs one decider in its own process: it asks IsLeader every
// 100 ms and prints "LEADER" once it leads, then keeps heart-beating until
// SIGTERM (release) or SIGKILL (none).
func helperMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	client := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(os.Getenv(helperEndpointEnv))
		o.DisableValidateResponseChecksum = true
	})
	ms, _ := strconv.Atoi(os.Getenv(helperLeaseEnv))
	lease := time.Duration(ms) * time.Millisecond
	log, _ := zap.NewDevelopment()
	d, err := New(client, StaticTarget{Name: os.Getenv(helperTableEnv), PartitionKey: "leaseKey"},
		Config{WorkerID: os.Getenv(helperEnv), LeaseDuration: lease, HeartbeatPeriod: lease / 4}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for !d.IsLeader(ctx) {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Println("LEADER")
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startHelper runs helperMain in a child process on the emulator e.
func startHelper(t *testing.T, e *testenv.Emulator, table, worker string, leaseDuration time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+worker, helperEndpointEnv+"="+e.Endpoint, helperTableEnv+"="+table,
		helperLeaseEnv+"="+strconv.FormatInt(leaseDuration.Milliseconds(), 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.CreateTemp(t.TempDir(), worker+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
	})
	return cmd
}
