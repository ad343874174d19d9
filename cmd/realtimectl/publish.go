package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/clienttls"
)

const publishSynopsis = `realtimectl publish — publish an event with a service key.

Usage:
  realtimectl publish --service-key K (--to-user U | --to-household H | --broadcast) [--except U]
      [--sender U [--origin O]]
      (--notification TEXT [--level info|success|warning|error] [--title T]
       | --setting key=value
       | --json EVENT_JSON)

Sends one event through the Publish RPC, which only service credentials may
call (realtimed --dev prints its dev service key at start-up; --dev reads it
from the dev key instead). Prints the response — the event's id and cursor
— as one line of JSON. --json takes a honeydo.realtime.v1.Event in protobuf
JSON, e.g. '{"itemAdded":{"item":{"name":"Milk"}}}', or @file to read it
from a file.
`

func runPublish(ctx context.Context, std *stdio, args []string) error {
	var (
		srv                        serverFlags
		serviceKey, dataDir        string
		dev, broadcast             bool
		user, household, except    string
		sender, origin, id         string
		notification, level, title string
		setting, eventJSON         string
		timeout                    time.Duration
	)
	fs := newFlagSet(std, "publish", publishSynopsis)
	srv.register(fs)
	fs.StringVar(&serviceKey, "service-key", "", "service `key` (hds_…) allowed to publish")
	fs.BoolVar(&dev, "dev", false, "use realtimed --dev's service key, derived from the dev key in --data-dir")
	registerDataDir(fs, &dataDir)
	fs.StringVar(&user, "to-user", "", "send to every stream of this `user`")
	fs.StringVar(&household, "to-household", "", "send to every member of this `household`")
	fs.BoolVar(&broadcast, "broadcast", false, "send to everyone connected")
	fs.StringVar(&except, "except", "", "leave every stream of this `user` out (to leave out only the acting client, use --origin)")
	fs.StringVar(&sender, "sender", "", "the `user` on whose behalf the event is sent (Event.sender_user_id)")
	fs.StringVar(&origin, "origin", "", "the acting client's `origin` (its Realtime-Origin header; Event.origin): that client skips the event, everyone else gets it")
	fs.StringVar(&id, "id", "", "the event's `id` (default: assigned by the server)")
	fs.StringVar(&notification, "notification", "", "payload: a system notification with this `text`")
	fs.StringVar(&level, "level", "info", "the notification's `level`: info, success, warning or error")
	fs.StringVar(&title, "title", "", "the notification's `title`")
	fs.StringVar(&setting, "setting", "", "payload: a SettingUpdated event, `key=value`")
	fs.StringVar(&eventJSON, "json", "", "payload: a whole Event in protobuf `JSON`, or @file")
	registerTimeout(fs, &timeout)
	// Before --user and --household meant the token's identity everywhere
	// else, they named publish's target.
	fs.deprecated("user", "to-user")
	fs.deprecated("household", "to-household")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}

	target, err := publishTarget(user, household, broadcast, except)
	if err != nil {
		return err
	}
	ev, err := publishEvent(notification, level, title, setting, eventJSON, fs.given)
	if err != nil {
		return err
	}
	if sender != "" {
		ev.SenderUserId = sender
	}
	if origin != "" {
		ev.Origin = origin
	}
	if id != "" {
		ev.Id = id
	}
	if dev && serviceKey != "" {
		// One from the command line and one from the environment: the
		// command line wins.
		switch {
		case fs.given["dev"] && !fs.given["service-key"]:
			serviceKey = ""
		case fs.given["service-key"] && !fs.given["dev"]:
			dev = false
		default:
			return usagef("publish", "--service-key and --dev exclude each other")
		}
	}
	if dev {
		key, err := loadDevKey(dataDir)
		if err != nil {
			return err
		}
		serviceKey = key.ServiceKey()
	}
	if serviceKey == "" {
		return usagef("publish", "publishing needs a service credential: --service-key (or REALTIMECTL_SERVICE_KEY), or --dev against realtimed --dev")
	}
	opts, closeIdle, err := srv.options(fs)
	if err != nil {
		return err
	}
	defer closeIdle()
	opts.Token = func(context.Context) (string, error) { return serviceKey, nil }
	rt, err := client.NewRealtimeClient(opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := rt.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{Target: target, Event: ev}))
	if err != nil {
		return clienttls.Explain(err)
	}
	line, err := jsonLine(res.Msg)
	if err != nil {
		return err
	}
	_, err = std.stdout.Write(line)
	return err
}

func publishTarget(user, household string, broadcast bool, except string) (*realtimev1.Target, error) {
	t := &realtimev1.Target{ExceptUserId: except}
	n := 0
	if user != "" {
		t.To = &realtimev1.Target_UserId{UserId: user}
		n++
	}
	if household != "" {
		t.To = &realtimev1.Target_HouseholdId{HouseholdId: household}
		n++
	}
	if broadcast {
		t.To = &realtimev1.Target_Broadcast_{Broadcast: &realtimev1.Target_Broadcast{}}
		n++
	}
	if n != 1 {
		return nil, usagef("publish", "give exactly one target: --to-user, --to-household or --broadcast")
	}
	return t, nil
}

var notificationLevels = map[string]systemv1.Notification_Level{
	"info":    systemv1.Notification_LEVEL_INFO,
	"success": systemv1.Notification_LEVEL_SUCCESS,
	"warning": systemv1.Notification_LEVEL_WARNING,
	"error":   systemv1.Notification_LEVEL_ERROR,
}

func publishEvent(notification, level, title, setting, eventJSON string, given map[string]bool) (*realtimev1.Event, error) {
	n := 0
	for _, v := range []string{notification, setting, eventJSON} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, usagef("publish", "give exactly one payload: --notification, --setting or --json")
	}
	if notification == "" && (given["level"] || given["title"]) {
		return nil, usagef("publish", "--level and --title go with --notification")
	}
	switch {
	case notification != "":
		lv, ok := notificationLevels[strings.ToLower(level)]
		if !ok {
			return nil, usagef("publish", "--level must be info, success, warning or error, not %q", level)
		}
		return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
			Level: lv, Message: notification, Title: title,
		}}}, nil
	case setting != "":
		key, value, ok := strings.Cut(setting, "=")
		if !ok || key == "" {
			return nil, usagef("publish", "--setting must be key=value, not %q", setting)
		}
		return &realtimev1.Event{Payload: &realtimev1.Event_SettingUpdated{SettingUpdated: &systemv1.SettingUpdated{Key: key, Value: value}}}, nil
	}
	raw := []byte(eventJSON)
	if name, ok := strings.CutPrefix(eventJSON, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--json: %w", err)
		}
		raw = b
	}
	ev := &realtimev1.Event{}
	if err := protojson.Unmarshal(raw, ev); err != nil {
		return nil, usagef("publish", "--json is not a honeydo.realtime.v1.Event: %v", err)
	}
	if ev.Payload == nil {
		return nil, usagef("publish", "--json has no payload: give one case, e.g. {\"notification\":{\"message\":\"hi\"}}")
	}
	return ev, nil
}
