package synapse

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

var pyIntRE = regexp.MustCompile(`^\s*[-+]?[0-9]+(_[0-9]+)*\s*$`)

// validSuffixed mirrors Synapse's parse_duration/parse_size: a YAML int is taken as is; a string
// may end in one suffix character from suffixes and the rest must be a Python int. Anything else
// (floats, bools, "500ms", "10MB", "10k") raises in Synapse.
func validSuffixed(r ref, suffixes string) bool {
	if r.n.Kind != yaml.ScalarNode {
		return false
	}
	if _, isBool := r.pyBool(); isBool {
		return false
	}
	if r.plainStyle() {
		if _, ok := r.integer(); ok {
			return true
		}
		switch r.n.ShortTag() {
		case "!!int":
			return true
		case "!!float":
			return false
		}
	}
	v := r.n.Value
	if v == "" {
		return false
	}
	if strings.ContainsRune(suffixes, rune(v[len(v)-1])) {
		v = v[:len(v)-1]
	}
	return pyIntRE.MatchString(v)
}

// durationKeys are the config paths Synapse parses with parse_duration ("*" = every list item).
func durationKeys() []string {
	return []string{
		"redaction_retention_period", "forgotten_room_retention_period", "user_ips_max_age",
		"session_lifetime", "refresh_token_lifetime", "refreshable_access_token_lifetime",
		"nonrefreshable_access_token_lifetime", "delete_stale_devices_after", "key_refresh_interval",
		"media_retention.local_media_lifetime", "media_retention.remote_media_lifetime",
		"account_validity.period", "account_validity.renew_at", "ui_auth.session_timeout",
		"retention.allowed_lifetime_min", "retention.allowed_lifetime_max",
		"retention.default_policy.min_lifetime", "retention.default_policy.max_lifetime",
		"retention.purge_jobs.*.interval", "retention.purge_jobs.*.shortest_max_lifetime",
		"retention.purge_jobs.*.longest_max_lifetime",
		"caches.expiry_time", "caches.sync_response_cache_duration", "caches.cache_autotuning.min_cache_ttl",
		"email.validation_token_lifetime",
		"federation.client_timeout", "federation.max_short_retry_delay", "federation.max_long_retry_delay",
		"federation.destination_min_retry_interval", "federation.destination_max_retry_interval",
	}
}

// sizeKeys are the config paths Synapse parses with parse_size.
func sizeKeys() []string {
	return []string{
		"max_upload_size", "max_image_pixels", "max_avatar_size", "max_spider_size", "event_cache_size",
		"caches.cache_autotuning.max_cache_memory_usage", "caches.cache_autotuning.target_cache_memory_usage",
	}
}

// walkPath calls fn for every node at a dotted path below r ("*" iterates a list).
func walkPath(r ref, path []string, fn func(ref)) {
	if !r.ok() {
		return
	}
	if len(path) == 0 {
		fn(r)
		return
	}
	if path[0] == "*" {
		for _, it := range r.items() {
			walkPath(it, path[1:], fn)
		}
		return
	}
	walkPath(r.get(path[0]), path[1:], fn)
}

// checkFormats checks durations, sizes and public_baseurl.
func (v *validator) checkFormats() {
	check := func(paths []string, rule, suffixes, what string) {
		for _, p := range paths {
			parts := strings.Split(p, ".")
			walkPath(v.c.top(parts[0]), parts[1:], func(r ref) {
				if r.isNull() || validSuffixed(r, suffixes) {
					return
				}
				v.report(rule, r, "%s: %q is not a valid %s", p, truncate(r.n.Value, 40), what)
			})
		}
	}
	check(durationKeys(), "duration-invalid", "smhdwy",
		"duration: write a number of milliseconds or a number with one suffix s, m, h, d, w or y (\"ms\" is not accepted)")
	check(sizeKeys(), "size-invalid", "KMGT",
		"size: write a number of bytes or a number with one suffix K, M, G or T (1024-based, upper case)")
	v.checkPublicBaseURL()
}
