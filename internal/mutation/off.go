//go:build !simmutation

package mutation

// Enabled says planted bugs can be activated: the simmutation tag is set.
const Enabled = false
