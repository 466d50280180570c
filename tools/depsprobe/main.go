package main

import (
	_ "github.com/creack/pty"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/kelseyhightower/envconfig"
	_ "github.com/keybase/go-keybase-chat-bot/kbchat"
	_ "github.com/oklog/run"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.uber.org/zap"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/yaml.v3"
)

func main() {}
