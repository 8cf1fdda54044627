package procreg

import bolt "go.etcd.io/bbolt"

type (
	boltDB = bolt.DB
	boltTx = bolt.Tx
)
