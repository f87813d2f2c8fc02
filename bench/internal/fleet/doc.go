// Package fleet runs a workload's client side: it splits N connections
// over worker processes (one process stays under the 20,000 open-file
// limit), starts them as children of this binary ("__worker") or, for one
// worker, as goroutines of this process, and carries commands down and
// events up as JSON lines. A workload registers its WorkerFunc under its
// mode name (RegisterWorker, in main), encodes its own parameters into
// Spec.Params and its figures into a "result" Event (ResultEvent,
// DecodePart): fleet knows no workload.
//
// DialAll is the one dialing loop every worker uses: bounded concurrency,
// optional pacing, progress events, and the greeting check.
package fleet
