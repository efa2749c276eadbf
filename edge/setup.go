package edge

import (
	"cmp"
	"errors"

	"github.com/splitstream/splitstream/bundle"
)

// Setup is an agent described by its parts' options, as the edge command's
// flags give them; Open assembles it.
type Setup struct {
	Bundle  *bundle.Bundle
	Server  string // the cloud's address
	Encoder EncoderOptions
	Client  ClientOptions
	Agent   AgentOptions
	// Local, with a Dir, opens a local model (Agent.Local) there.
	Local LocalOptions
	// Policy chooses each frame's operating point. With Policy.Adaptive,
	// Bundle may be nil: it is then the first split bundle of
	// Policy.Bundles (the local model's).
	Policy PolicyOptions
}

// Open opens the encoder, the client, the local model (if any) and the
// agent, and with the adaptive policy the encoders of every point. close
// releases them and saves the local model.
func (s Setup) Open() (a *Agent, close func() error, err error) {
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			closeAll() // not close: a failing return has set it to nil
		}
	}()
	if s.Policy.Adaptive && s.Bundle == nil {
		s.Bundle = firstSplit(s.Policy.Bundles)
	}
	if s.Bundle == nil {
		return nil, nil, errors.New("edge: no bundle")
	}
	enc, err := NewEncoder(s.Bundle, s.Encoder)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, enc.Close)
	var op *operating
	if s.Policy.Adaptive {
		var closeOp func() error
		if op, closeOp, err = newOperating(s.Policy, s.Encoder, enc, s.Client.Logger); err != nil {
			return nil, nil, err
		}
		closers = append(closers, closeOp)
		s.Agent.Tasks = cmp.Or(s.Agent.Tasks, op.tasks())
	}
	client, err := NewClient(s.Server, s.Client)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, client.Close)
	if s.Local.Dir != "" {
		if s.Local.Engine == "" {
			s.Local.Engine, s.Local.EngineOptions = s.Encoder.Engine, s.Encoder.EngineOptions
		}
		if s.Agent.Local, err = OpenLocal(s.Bundle, s.Local); err != nil {
			return nil, nil, err
		}
		closers = append(closers, s.Agent.Local.Close)
	}
	if a, err = NewAgent(enc, client, s.Agent); err != nil {
		return nil, nil, err
	}
	if op != nil {
		if err = op.adopt(a); err != nil {
			return nil, nil, err
		}
	}
	return a, closeAll, nil
}
