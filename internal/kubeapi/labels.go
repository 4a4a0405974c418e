package kubeapi

// Labels and annotations every Kubernetes realizer puts on the units it
// manages, so that ebb's units read alike whichever realizer made them. Each
// realizer adds the labels its engine's Amoro container sets.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "ebb"
	LabelChain     = "ebbscale.io/chain"
	LabelUnit      = "ebbscale.io/unit"
	LabelThreads   = "ebbscale.io/threads"
	// AnnotationRequestID records the decision that created a unit.
	AnnotationRequestID = "ebbscale.io/request-id"
	// AnnotationRestart holds the request id of a unit's last restart: a
	// retried restart finds it already set and does nothing.
	AnnotationRestart = "ebbscale.io/restart-request"
)
