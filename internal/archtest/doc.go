// Package archtest holds only a test: TestImports keeps keiline's
// architecture (docs/architecture.md) from eroding — who may import whom.
package archtest
