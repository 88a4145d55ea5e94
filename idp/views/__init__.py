"""The IdP's own pages: how a person proves who they are, and errors they can meet."""
