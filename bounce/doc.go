// Package bounce writes relay's delivery status notifications: RFC 3464
// reports in an RFC 6522 (formerly RFC 3462) multipart/report, sent to the
// envelope sender of a message when recipients failed permanently (a
// bounce) or are still being retried after warn_after (a delay warning).
//
// A report has three parts: a text/plain explanation for people (what
// happened, the server's reply verbatim, what it means and how to fix it),
// the machine-readable message/delivery-status, and the original message
// (message/rfc822) or its header only (text/rfc822-headers). Reports carry
// "Auto-Submitted: auto-replied" (RFC 3834); IsAutoSubmitted recognizes
// such messages so that a report is never answered with another one.
//
// Build streams the original message: a report about a 100 MB message
// does not hold it in memory.
package bounce
