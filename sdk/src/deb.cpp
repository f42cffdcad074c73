// Implementation arrives with its helper; see the header.
