// Package learn is the edge's on-device learning (Edge2Train, IoT 2020): a
// small linear classifier trained incrementally, on the device, from the
// tensors it already has for every frame, labelled by the cloud's
// classification replies or by the user; it answers classification when
// the cloud cannot. It is pure Go (no cgo) and allocates nothing per
// sample: its memory is what New allocates, bounded by its Config.
//
// # Models
//
// Pegasos is a multi-class linear SVM with Crammer and Singer's loss,
// max(0, 1 + w_r·x - w_y·x) with r the best wrong class, trained with
// Pegasos's sub-gradient steps (Shalev-Shwartz, Singer, Srebro and Cotter,
// 2011, section 6 for the multi-class case). Crammer-Singer rather than
// one-vs-rest: its one objective is the rule used to predict (argmax of
// w_c·x), so the class scores are comparable by construction, whereas
// one-vs-rest trains K separate, unbalanced (1 against K-1) problems whose
// scores are not calibrated against each other; and a Crammer-Singer step
// touches two rows of W where one-vs-rest touches all K. Logistic is
// multinomial logistic regression with SGD, the second model; its Score is
// a probability. Both keep W = scale·V so that the L2 shrinking of a step
// costs O(1).
//
// # Features
//
// A tensor of shape C x H x W (the dequantised latent, or the trunk's
// features when the edge runs the trunk) becomes a vector of per-channel
// statistics (mean, max, standard deviation) pooled over the whole plane
// or a grid of regions; optionally the channels are first replaced by a
// fixed random convolution (Features.Filters). Features are standardised
// with running means and variances (Welford), updated with every new
// sample, and scaled to a norm of about 1, so λ and the step sizes do not
// depend on the feature choice. docs/EDGE2TRAIN.md has the measurements
// behind DefaultFeatures.
//
// # Incremental learning
//
// Learn takes one sample: one step on it, then it enters the replay
// buffer, and every EpochEvery samples the learner makes Epochs passes over
// the buffer in random order. The buffer is a reservoir (Vitter's
// algorithm R), not a FIFO: it holds a uniform sample of everything seen,
// so a replay approximates an epoch over the whole history and a class
// seen early (a rare one, or one a user labelled once) is not pushed out by
// a burst of another. It stores feature vectors, not tensors: its memory is
// Buffer x (4·features + 2) bytes.
//
// # Labels
//
// LearnCloud learns the cloud's top-1 when its score (softmax probability)
// reaches MinScore: the cloud head is the teacher. LearnLabel learns a
// class name a user gave (UserLabels, the edge's --labels FILE); a name the
// cloud lacks becomes a new class, up to MaxClasses.
//
// # Persistence
//
// Save writes one binary file (FileName) atomically: a temporary file in
// the same directory, synced, renamed. It holds the bundle's content hash:
// Load refuses another bundle's model (ErrOtherBundle). The parser
// (Unmarshal) checks every count against the loader's bounds and the bytes
// left before it allocates, and a CRC-32 over the whole file.
//
// # In the edge agent
//
// The agent (--learn DIR, --fallback local) is meant to use it this way:
// Open(DIR, bundle.ID, shape, head labels, cfg) at start; after each
// classification reply, LearnCloud(x, top1, score) with x the tensor of that
// frame (and LearnLabel for frames in --labels); when a request fails or
// the adaptive policy finds no point, Predict(x) answers with "source":
// "local"; Save(DIR) periodically and at exit. A Learner is safe for
// concurrent use.
package learn
