package lease

const helperEnv = "MULTILANGD_LEASE_HELPER"

func helperMain() int { return 0 }
