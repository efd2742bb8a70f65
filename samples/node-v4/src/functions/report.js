// report: an admin-level function that returns a plain object as `jsonBody` (no extraOutputs).
const { app } = require('@azure/functions');

app.http('report', {
    methods: ['GET'],
    authLevel: 'admin',
    handler: async () => {
        return { jsonBody: { report: 'ok' } };
    },
});
