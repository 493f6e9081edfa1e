"""Refund and chargeback services (HackSoft style: keyword-only, typed, transactional;
they lock, transition, save, audit and queue)."""
