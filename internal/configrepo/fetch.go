package configrepo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"go.uber.org/zap"
)

// tipRef is where the fetched tip is recorded in our bare repository, keeping its objects
// reachable and giving later fetches something to offer as "have".
const tipRef = plumbing.ReferenceName("refs/configrepo/tip")

// isCommitID reports whether s is a full lower-case hex SHA-1, the only spelling of a commit id we
// accept as a ref (an abbreviation is looked up as a branch or tag name and fails clearly).
func isCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// fetcher fetches one ref of one source into our storage. It drives go-git's upload-pack
// session directly rather than Repository.Fetch so that it can pick the transport per operation
// (see session.go), count and cap the pack bytes as they arrive, and ask the remote what the ref
// points to before deciding whether anything needs fetching at all.
type fetcher struct {
	src     *source
	cfg     Config
	st      storer.Storer
	scratch string
	log     *zap.Logger
}

// fetchResult is the outcome of one fetch: tip is what the remote advertised for the ref (a
// commit or an annotated tag), commit is tip peeled to a commit (zero when skipped).
type fetchResult struct {
	tip    plumbing.Hash
	commit plumbing.Hash
	bytes  int64
}

// fetch resolves cfg.Ref on the remote and makes sure the commit it names is in our storage. When
// skip(tip) returns true nothing is transferred and the result has only tip set: the Syncer uses
// this to do nothing when the remote has not moved. Transient failures are retried within the
// budget; step ("clone" or "fetch") names the operation in errors.
func (f *fetcher) fetch(ctx context.Context, step string, skip func(plumbing.Hash) bool) (fetchResult, error) {
	ref := strings.TrimSpace(f.cfg.Ref)
	if isCommitID(ref) {
		// A commit id names immutable content: when we already have it, there is nothing to ask.
		h := plumbing.NewHash(ref)
		if c, err := object.GetCommit(f.st, h); err == nil {
			return fetchResult{tip: h, commit: c.Hash}, nil
		}
	}
	var res fetchResult
	err := withRetry(ctx, f.cfg, f.log, step, f.src.redacted, func(actx context.Context) error {
		var err error
		res, err = f.attempt(actx, ref, skip)
		return err
	})
	return res, err
}

// attempt is one network round: advertise, decide, transfer, record.
func (f *fetcher) attempt(ctx context.Context, ref string, skip func(plumbing.Hash) bool) (res fetchResult, err error) {
	sess, err := openSession(ctx, f.src, f.cfg, f.scratch)
	if err != nil {
		return res, err
	}
	defer func() {
		if ctx.Err() != nil {
			go sess.close() // a cancelled ssh session may block on its goodbye
			return
		}
		sess.close()
	}()
	ar, err := sess.up.AdvertisedReferencesContext(ctx)
	if err != nil {
		return res, err
	}
	tip, wants, err := resolveAdvertised(ar, ref)
	if err != nil {
		return res, err
	}
	if !tip.IsZero() && skip != nil && skip(tip) {
		return fetchResult{tip: tip}, nil
	}
	wants = f.missing(wants)
	if len(wants) > 0 {
		if sess.local != nil {
			res.bytes, err = f.localTransfer(ctx, sess.local, ar, wants)
		} else {
			res.bytes, err = f.transfer(ctx, sess.up, ar, wants)
		}
		if err != nil {
			return res, err
		}
	}
	if tip.IsZero() { // a commit id that no ref advertises: it must have come with the branches
		tip = plumbing.NewHash(ref)
	}
	commit, err := peelToCommit(f.st, tip)
	if err != nil {
		return res, err
	}
	if err := f.st.SetReference(plumbing.NewHashReference(tipRef, tip)); err != nil {
		return res, err
	}
	res.tip, res.commit = tip, commit
	return res, nil
}

// resolveAdvertised maps the wanted ref to what the remote advertises: the tip hash and the
// objects to want. Empty ref means HEAD; a name is tried as given, then under refs/heads/ and
// refs/tags/; a 40-hex id that no ref points at wants every branch and tag (servers only hand out
// advertised tips), and is looked up after the transfer.
func resolveAdvertised(ar *packp.AdvRefs, ref string) (tip plumbing.Hash, wants []plumbing.Hash, err error) {
	switch {
	case ref == "" || ref == "HEAD":
		if ar.Head == nil {
			return tip, nil, fmt.Errorf("%w: the remote has no HEAD; set a ref", errRefNotFound)
		}
		return *ar.Head, []plumbing.Hash{*ar.Head}, nil
	case isCommitID(ref):
		h := plumbing.NewHash(ref)
		for _, adv := range ar.References {
			if adv == h {
				return h, []plumbing.Hash{h}, nil
			}
		}
		names := make([]string, 0, len(ar.References))
		for name := range ar.References {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/") {
				wants = append(wants, ar.References[name])
			}
		}
		return plumbing.ZeroHash, wants, nil
	}
	for _, name := range []string{ref, "refs/heads/" + ref, "refs/tags/" + ref} {
		if h, ok := ar.References[name]; ok {
			return h, []plumbing.Hash{h}, nil
		}
	}
	return tip, nil, fmt.Errorf("%w: %q is neither a branch, a tag nor a commit id on the remote", errRefNotFound, ref)
}

// missing drops the wants we already have (deduplicated).
func (f *fetcher) missing(wants []plumbing.Hash) []plumbing.Hash {
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	for _, h := range wants {
		if seen[h] {
			continue
		}
		seen[h] = true
		if f.st.HasEncodedObject(h) != nil {
			out = append(out, h)
		}
	}
	return out
}

// transfer asks for wants, offering as haves only advertised tips we already hold (every server,
// including go-git's in-process one, knows those), and streams the pack into storage through a
// counter that aborts once MaxBytes is exceeded.
func (f *fetcher) transfer(ctx context.Context, up transport.UploadPackSession, ar *packp.AdvRefs, wants []plumbing.Hash) (int64, error) {
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	if ar.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return 0, err
		}
	}
	req.Wants = wants
	seen := map[plumbing.Hash]bool{}
	for _, h := range ar.References {
		if !seen[h] && f.st.HasEncodedObject(h) == nil {
			seen[h] = true
			req.Haves = append(req.Haves, h)
		}
	}
	resp, err := up.UploadPack(ctx, req)
	if err != nil {
		if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
			return 0, nil
		}
		return 0, err
	}
	defer func() { _ = resp.Close() }()
	counter := &limitReader{r: resp, max: f.cfg.MaxBytes}
	var r io.Reader = counter
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, counter)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, counter)
	}
	return f.store(ctx, r, counter)
}

// localTransfer is transfer for in-process sources. go-git's in-process upload-pack wraps its pack
// pipe in a context reader that allocates a buffer and starts a goroutine per Read, and the pack
// encoder writes in small pieces: about 140 MB of garbage for a 200-commit repository. Encoding
// the same pack here through a buffered pipe keeps the in-process design (no git binary) at a
// fraction of the cost; cancellation closes the pipe.
func (f *fetcher) localTransfer(ctx context.Context, src storer.Storer, ar *packp.AdvRefs, wants []plumbing.Hash) (int64, error) {
	var haves []plumbing.Hash
	for _, h := range ar.References {
		if f.st.HasEncodedObject(h) == nil && src.HasEncodedObject(h) == nil {
			haves = append(haves, h)
		}
	}
	have, err := revlist.Objects(src, haves, nil)
	if err != nil {
		return 0, err
	}
	objs, err := revlist.Objects(src, wants, have)
	if err != nil {
		return 0, err
	}
	pr, pw := io.Pipe()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	defer stop()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		_, err := packfile.NewEncoder(bw, src, false).Encode(objs, 10)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close() // unblocks the encoder when we stop early
	counter := &limitReader{r: pr, max: f.cfg.MaxBytes}
	return f.store(ctx, counter, counter)
}

// store writes the pack read from r into the repository. counter is the size-limited reader
// under r: when it tripped, the error says the pack was too large rather than what the decoder
// made of the cut-off stream; when ctx ended, the error is ctx's.
func (f *fetcher) store(ctx context.Context, r io.Reader, counter *limitReader) (int64, error) {
	if err := packfile.UpdateObjectStorage(f.st, r); err != nil {
		if counter.over {
			return counter.n, fmt.Errorf("%w: fetched pack exceeds %d bytes", errOversized, f.cfg.MaxBytes)
		}
		if ctx.Err() != nil {
			return counter.n, ctx.Err()
		}
		return counter.n, err
	}
	return counter.n, nil
}

// limitReader counts bytes and fails once more than max have passed.
type limitReader struct {
	r    io.Reader
	n    int64
	max  int64
	over bool
}

// Read implements io.Reader.
func (l *limitReader) Read(p []byte) (int, error) {
	k, err := l.r.Read(p)
	l.n += int64(k)
	if l.n > l.max {
		l.over = true
		return k, errOversized
	}
	return k, err
}

// peelToCommit follows annotated tags to the commit they name.
func peelToCommit(st storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		obj, err := object.GetObject(st, h)
		if err != nil {
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				return plumbing.ZeroHash, fmt.Errorf("%w: commit %s is not on any branch or tag of the remote", errRefNotFound, h)
			}
			return plumbing.ZeroHash, err
		}
		switch o := obj.(type) {
		case *object.Commit:
			return o.Hash, nil
		case *object.Tag:
			h = o.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("%w: %s is a %s, not a commit", errRefNotFound, h, obj.Type())
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%w: tag chain too long at %s", errRefNotFound, h)
}

// withRetry runs attempt with a per-attempt timeout and retries transient failures with
// exponential back-off until the budget is spent. Configuration errors and cancellation end it at
// once. The result is always an *Error naming step and url.
func withRetry(ctx context.Context, cfg Config, log *zap.Logger, step, url string, attempt func(context.Context) error) error {
	clock := cfg.clock()
	start := clock.Now()
	backoff := cfg.RetryInitial
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, cfg.NetworkTimeout)
		err := attempt(actx)
		timedOut := actx.Err() != nil
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return wrap(step, url, fmt.Errorf("%w (after %v)", ctx.Err(), clock.Now().Sub(start).Round(time.Millisecond)))
		}
		if timedOut {
			err = fmt.Errorf("%w: no answer within %v: %v", context.DeadlineExceeded, cfg.NetworkTimeout, err)
		}
		if classify(err) != classTransient {
			return wrap(step, url, err)
		}
		elapsed := clock.Now().Sub(start)
		if cfg.RetryBudget < 0 || elapsed+backoff > cfg.RetryBudget {
			return &Error{Step: step, URL: url, Kind: ErrUnavailable,
				Err: fmt.Errorf("unreachable after %d attempts in %v: %w", n, elapsed.Round(time.Millisecond), err)}
		}
		log.Warn("transient failure, retrying", zap.String("step", step), zap.String("url", url),
			zap.Int("attempt", n), zap.Duration("backoff", backoff), zap.Error(err))
		if !sleepCtx(ctx, clock, backoff) {
			return wrap(step, url, ctx.Err())
		}
		backoff = min(backoff*2, maxRetryBackoff)
	}
}
