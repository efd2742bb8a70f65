// fail: throws, so the invocation fails and the client gets a 500.
const { app } = require('@azure/functions');

app.http('fail', {
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => {
        throw new Error('fail: this function always throws');
    },
});
