package wire

import "strings"

// Stage names one cloud stage in a reply's timings. The cloud writes and the
// edge reads them only through these names, so the two cannot drift apart.
// A stage name is free text on the wire (at most MaxStageName bytes): a
// reader skips names it does not know.
type Stage string

// The cloud's stages, in the order they run.
const (
	StageQueue  Stage = "queue"  // waiting for a worker
	StageDecode Stage = "decode" // payload to tensor (entropy decoding for the learned codec)
	StageTrunk  Stage = "trunk"  // the shared trunk graph, once per request (trunk layout only)
	StagePost   Stage = "post"   // post-processing of every head's output
)

const headPrefix = "head:"

// HeadStage is the stage of the head for task t, "head:classify" and so on;
// heads run concurrently.
func HeadStage(t Task) Stage { return Stage(headPrefix + t.String()) }

// Head reports the task of a head stage.
func (s Stage) Head() (Task, bool) {
	name, ok := strings.CutPrefix(string(s), headPrefix)
	if !ok {
		return 0, false
	}
	t, err := ParseTask(name)
	return t, err == nil
}
