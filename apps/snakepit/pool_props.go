package snakepit

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/actors/pool"
)

func poolProps(c pool.Config) *actor.Props { return pool.Props(c) }
