"""One message's route, in its write transaction: duplicate, bounce, automatic mail, thread, follow-up or new request."""
