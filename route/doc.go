// Package route decides which smarthosts serve a sender and which
// envelope sender goes out through each: the part of SPEC §5 that both
// delivery (package relay) and the explanations of `relay rewrite` and
// `relay check` (package rewrite) need, kept apart so that intake never
// imports the SMTP client to answer "where would this go?".
//
// # Which smarthosts: Route, then Recipient
//
// The sender map (package rewrite) runs first and gives the sender that
// routing looks at. [Route], the sender's route, returns the
// [[smarthost]] tables without recipients whose senders patterns match
// it, in configuration order, or, when none matches, those without
// senders (the catch-all ones). A table whose patterns do not match is
// never used for that sender: its account may not send as it.
//
// [Recipient], the recipient's route, comes next: the tables whose
// recipients patterns match the recipient and whose senders allow the
// sender (those naming the sender first and alone), or, when no
// recipients pattern matches, the sender's route. A recipients table thus
// wins over the sender's route, as Postfix's transport_maps win over
// sender_dependent_relayhost_maps. Delivery splits a message whose
// recipients get different lists into one transaction per list (package
// relay, split.go). [Pinned] is the one table sendmail -a named.
//
// An empty result is a fault of the configuration, never a bounce: the
// mail waits. Delivery fails over down the returned list.
//
// # Which envelope sender: OutgoingSender
//
// Once a smarthost is chosen, [OutgoingSender] applies its own rules:
// envelope_from replaces every sender; else a preset whose provider
// accepts only the login as the sender (yandex, mailru, outlook, rambler)
// sends the login; else the sender goes out unchanged. The null sender
// stays null. It also names the rule that changed the sender, for the
// reports of `relay rewrite`.
//
// The package reads nothing but the *config.Config it is given: no files,
// no network, so its answers are the same at submission, at delivery and
// in the explanations.
package route
