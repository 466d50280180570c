package main
import (
 _ "github.com/keybase/go-keybase-chat-bot/kbchat"
 _ "github.com/go-git/go-git/v5"
 _ "github.com/kelseyhightower/envconfig"
 _ "go.uber.org/zap"
 _ "github.com/oklog/run"
 _ "gopkg.in/yaml.v3"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/creack/pty"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/crypto/ssh"
)
func main(){}
