"""The review queue's decisions (approve, reject), above refunds in the layers: they
capture, cancel or refund through the payment and refund services."""
