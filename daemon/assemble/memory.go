package assemble

import (
	"math"
	"os"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/retrieval"
)

// Memory budget (memoryBudgetBytes, docs/performance.md#memory).
const (
	// defaultMemoryBudget applies when neither memoryBudgetBytes nor
	// GOMEMLIMIT is set.
	defaultMemoryBudget = 512 << 20
	// memoryBase is what the daemon uses besides fetched records: runtime,
	// binary, SDK clients, leases, per-child buffers (idle RSS is ~27 MiB).
	memoryBase = 40 << 20
	// softLimitMargin is the least of the budget kept outside the Go
	// runtime's soft memory limit.
	softLimitMargin = 24 << 20
	// minRecordBudget keeps a tiny budget workable (one response at a time).
	minRecordBudget = 16 << 20
)

// memoryBudget resolves the daemon's memory budget: memoryBudgetBytes, else
// GOMEMLIMIT when set, else defaultMemoryBudget. Unless GOMEMLIMIT is set,
// three quarters of it (at most the budget less 24 MiB) become the Go
// runtime's soft memory limit, so the
// collector works harder near it instead of letting the heap double (GOGC
// stays 100). Records get
// half of what the budget leaves beyond memoryBase: the other half is the
// garbage of responses already processed, which the collector frees lazily.
func memoryBudget(cfg *properties.Config, log *zap.Logger) *retrieval.Budget {
	total := cfg.MemoryBudgetBytes
	_, fromEnv := os.LookupEnv("GOMEMLIMIT")
	if total <= 0 {
		if lim := debug.SetMemoryLimit(-1); fromEnv && lim > 0 && lim < math.MaxInt64 {
			total = lim
		} else {
			total = defaultMemoryBudget
		}
	}
	if !fromEnv {
		// The limit counts what the Go runtime maps, not the binary's own
		// pages nor what the kernel has yet to take back: with 7/8 the peak
		// RSS reached the budget, with 3/4 it stays ~10% under it
		// (TestMemoryBudgetBoundsCatchUp, 96 MiB: 96-97 vs 86 MiB).
		debug.SetMemoryLimit(total - max(total/4, softLimitMargin))
	}
	records := max((total-memoryBase)/2, minRecordBudget)
	log.Info("memory budget", zap.Int64("memoryBudgetBytes", total), zap.Int64("recordBudgetBytes", records),
		zap.Int64("goMemoryLimit", debug.SetMemoryLimit(-1)))
	return retrieval.NewBudget(records)
}
