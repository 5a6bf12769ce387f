package lease

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/testenv"
)

// The test binary re-executes itself as a coordinator process when these
// variables are set.
const (
	helperEnv         = "MULTILANGD_LEASE_HELPER" // worker id
	helperEndpointEnv = "MULTILANGD_LEASE_HELPER_ENDPOINT"
	helperTableEnv    = "MULTILANGD_LEASE_HELPER_TABLE"
)

// helperMain runs one coordinator until SIGTERM/SIGINT (or SIGKILL).
func helperMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	client := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(os.Getenv(helperEndpointEnv))
		o.DisableValidateResponseChecksum = true
	})
	log, _ := zap.NewDevelopment()
	st := NewDynamoStore(client, os.Getenv(helperTableEnv), log)
	c := NewCoordinator(st, CoordinatorConfig{
		WorkerID: os.Getenv(helperEnv), FailoverTime: testFailover, TakerPeriod: time.Second,
		EnablePriorityLeaseAssignment: true, MaxLeasesToStealAtOneTime: 1,
	}, log)
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startHelper(t *testing.T, b backend, table, worker string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+worker, helperEndpointEnv+"="+b.emu.Endpoint, helperTableEnv+"="+table)
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

// TestMultiProcessConvergenceAndFailover: three coordinators in separate OS
// processes converge to 4/4/4 on 12 leases; one is killed with SIGKILL and
// the survivors take its leases and converge to 6/6.
func TestMultiProcessConvergenceAndFailover(t *testing.T) {
	forEachEmulator(t, func(t *testing.T, b backend) {
		st := newTable(t, b)
		createLeases(t, st, 12)
		var cmds []*exec.Cmd
		for i := 0; i < 3; i++ {
			cmds = append(cmds, startHelper(t, b, st.table, fmt.Sprintf("proc%d", i)))
		}
		waitFor(t, 90*time.Second, "4/4/4 across processes", func() bool {
			m := ownerCounts(t, st)
			return m["proc0"] == 4 && m["proc1"] == 4 && m["proc2"] == 4
		})
		if err := cmds[2].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmds[2].Wait()
		start := time.Now()
		waitFor(t, 60*time.Second, "6/6 after SIGKILL", func() bool {
			m := ownerCounts(t, st)
			return m["proc0"] == 6 && m["proc1"] == 6
		})
		t.Logf("survivors converged %s after SIGKILL", time.Since(start).Round(time.Millisecond))
		for i := 0; i < 2; i++ {
			if !testenv.ProcessAlive(cmds[i].Process.Pid) {
				t.Fatalf("proc%d died", i)
			}
		}
	})
}
