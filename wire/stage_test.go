package wire

import "testing"

func TestStageNames(t *testing.T) {
	for _, task := range AllTasks.List() {
		got, ok := HeadStage(task).Head()
		if !ok || got != task {
			t.Errorf("HeadStage(%v).Head() = %v, %v", task, got, ok)
		}
	}
	for _, s := range []Stage{StageQueue, StageDecode, StageTrunk, StagePost, "head:", "head:nosuch", "heads"} {
		if task, ok := s.Head(); ok {
			t.Errorf("%q is read as the head of %v", s, task)
		}
	}
}
