package config

import (
	"fmt"
	"net/url"
	"strings"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// DriverDSN maps a backend config to the name of its driver and the DSN the
// driver's registry opens (the driver name is the same in the kv, ts and
// graph registries). extproc opens namespaces with it and `prism migrate
// backfill` opens both ends of a migration, so the two always agree on what
// a backend config means.
func DriverDSN(b *configv1.Backend) (driver, dsn string, err error) {
	switch d := b.GetDriver().(type) {
	case *configv1.Backend_Sqlite:
		driver, dsn = "sqlite", d.Sqlite.GetPath()
	case *configv1.Backend_Postgres:
		driver, dsn = "postgres", d.Postgres.GetDsn()
	case *configv1.Backend_Nats:
		driver, dsn = "nats", d.Nats.GetUrl()
	case *configv1.Backend_Kafka:
		driver, dsn = "kafka", "kafka://"+strings.Join(d.Kafka.GetBrokers(), ",")
	case *configv1.Backend_Neptune:
		driver, dsn = "neptune", d.Neptune.GetEndpoint()
		if r := d.Neptune.GetRegion(); r != "" && dsn != "" {
			dsn += "?region=" + url.QueryEscape(r) // a region turns SigV4 signing on
		}
	case *configv1.Backend_Redis:
		return "", "", fmt.Errorf("backend %s: redis is a cache, not a primary backend", b.GetName())
	default:
		return "", "", fmt.Errorf("backend %s: no driver configured", b.GetName())
	}
	if dsn == "" {
		return "", "", fmt.Errorf("backend %s: %s needs its address or path", b.GetName(), driver)
	}
	return driver, dsn, nil
}
