package operator

// Event reasons teleop records on TeleApps. Failure reasons double as the
// Failed condition's reason.
const (
	ReasonDeploymentCreated = "DeploymentCreated"
	// ReasonDriftCorrected: a hand edit of an owned Deployment was reverted.
	ReasonDriftCorrected = "DriftCorrected"
	ReasonServiceCreated = "ServiceCreated"
	ReasonServiceUpdated = "ServiceUpdated"
	ReasonServiceDeleted = "ServiceDeleted"
	ReasonDegraded       = "Degraded"

	// ReasonErrResourceExists: a Deployment or Service of the TeleApp's name
	// exists and is not controlled by it; teleop does not take it over.
	ReasonErrResourceExists = "ErrResourceExists"
	// ReasonForbidden: the API server refused teleop (RBAC, admission).
	ReasonForbidden = "Forbidden"
	// ReasonQuotaExceeded: a ResourceQuota of the namespace refused the object.
	ReasonQuotaExceeded = "QuotaExceeded"
	// ReasonInvalid: the API server found the derived object invalid.
	ReasonInvalid = "Invalid"
)
