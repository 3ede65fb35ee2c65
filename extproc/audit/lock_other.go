//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is missing; run one process per log.
func lockFile(*os.File) error { return nil }
